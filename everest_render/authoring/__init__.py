"""Development-time tools (schema generators); never imported on the render path."""

from everest_render.commands.cli import main

main()

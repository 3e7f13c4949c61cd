from everest_render.cli import main

main()

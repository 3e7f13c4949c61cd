from everest_render.commands.entry import main

main()

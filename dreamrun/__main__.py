from dreamrun.cli import main

main()

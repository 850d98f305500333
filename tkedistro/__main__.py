from tkedistro.cli import main

main()

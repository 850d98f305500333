from tkedistro.cli.app import main

main()

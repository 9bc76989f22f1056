from lasskit.cli import main

main()

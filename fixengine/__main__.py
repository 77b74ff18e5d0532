from fixengine.cli import main

main()

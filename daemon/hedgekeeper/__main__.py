from hedgekeeper.cli import main

main()

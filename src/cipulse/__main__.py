from cipulse.cli import main

main()

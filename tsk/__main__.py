from tsk.cli.launcher import main

if __name__ == "__main__":
    main()

"""``python -m endoveil``: the command line."""

from endoveil.cli import main

if __name__ == "__main__":
    main()

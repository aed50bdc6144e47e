"""``python -m imagegen`` (and ``torchrun ... -m imagegen train ...``)."""
from .cli import main

if __name__ == "__main__":
    main()

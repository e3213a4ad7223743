"""Placeholder for `make demo`; to be replaced by the real demo."""

import sys


def main() -> int:
    print("demo: not yet implemented")
    return 0


if __name__ == "__main__":
    sys.exit(main())

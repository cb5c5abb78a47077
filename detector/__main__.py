"""``python -m detector``: the ``clean-article`` command."""

from detector.cli import main

main()

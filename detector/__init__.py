"""Label the paragraphs of German finance pages as editorial, promotional or navigational, and keep the
article.

>>> from detector import clean
>>> article = clean(open("page.txt", encoding="utf-8").read())
"""

from detector.api import Paragraph, classify, clean, load_model

__all__ = ["Paragraph", "classify", "clean", "load_model"]
__version__ = "0.1.0"

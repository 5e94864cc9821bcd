"""`python -m keras_nlp_app` is the same as `knlp`."""

import sys

from keras_nlp_app.cli import main

sys.exit(main())

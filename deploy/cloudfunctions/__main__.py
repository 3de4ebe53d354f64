"""``python -m deploy.cloudfunctions``: see ``deploy/cloudfunctions/build.py``."""

import sys

from deploy.cloudfunctions.build import main

sys.exit(main())

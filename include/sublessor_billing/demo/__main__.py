import sys

from sublessor_billing.demo.run import main

sys.exit(main())

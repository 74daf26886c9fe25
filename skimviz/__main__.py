from skimviz.cli import main

raise SystemExit(main())

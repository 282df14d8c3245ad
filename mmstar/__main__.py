from mmstar.cli import main

raise SystemExit(main())

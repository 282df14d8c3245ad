from mmstar.app.cli import main

raise SystemExit(main())

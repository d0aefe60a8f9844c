from tokenserver.cli import main

raise SystemExit(main())

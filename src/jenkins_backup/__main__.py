from jenkins_backup.cli.main import main

raise SystemExit(main())

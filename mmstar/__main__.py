from mmstar.app.cli import entry

entry()

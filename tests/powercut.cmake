# placeholder, filled in by the power-cut test

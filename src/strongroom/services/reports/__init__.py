"""Reports over what the jobs did and how fresh each resource's backup is."""

"""Services layer: the operations users ask for (apply, backup, restore, verify, report, lock); one place for policy and audit."""

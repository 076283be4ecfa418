"""Collections worklists (催收工作单): who is on which list, attempts, causes."""

"""The embedded local server (a mongod on PATH, else SecantusDB) and the processes a command starts
on this machine: the server's keeper and local workers."""

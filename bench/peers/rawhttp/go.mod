module mpgrawhttp

go 1.19

module mpgnethttp

go 1.19

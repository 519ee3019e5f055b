module mpgmicro

go 1.19

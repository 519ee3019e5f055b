module mpgpreempt

go 1.19

module mpghttpcore

go 1.19

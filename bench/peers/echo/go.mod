module mpgecho

go 1.19

module github.com/bodybroker/sdk

go 1.26

module ckpt.dev/go/ckpt

go 1.19

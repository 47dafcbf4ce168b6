module interop/bench/loadgen

go 1.22

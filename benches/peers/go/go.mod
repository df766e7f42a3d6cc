module longpollpeer

go 1.19

ls
cat /etc/os-release

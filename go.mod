module github.com/qimg/qimg

go 1.26.8

require (
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5
	github.com/digitalocean/go-libvirt v0.0.0-20261013170128-efbbdf578ac8
	github.com/gophercloud/gophercloud/v2 v2.16.0
	github.com/klauspost/compress v1.20.3
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.9
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.55.0
	golang.org/x/sys v0.50.0
	libvirt.org/go/libvirtxml v1.12008.0
)

require (
	github.com/aead/serpent v0.0.0-20160714141033-fba169763ea6 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)

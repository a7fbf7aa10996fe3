package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qimg/qimg/cmd/qimg/internal/osc"
	"github.com/qimg/qimg/openstack"
)

// cloudFlags are the openstack CLI's global options that choose and reach
// a cloud; the OS_* variables and clouds.yaml fill in the rest.
type cloudFlags struct {
	cloud, region, iface, cacert string
	insecure                     bool
}

func (c *cloudFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.cloud, "os-cloud", "", "cloud name in clouds.yaml (default: OS_CLOUD)")
	f.StringVar(&c.region, "os-region-name", "", "region (default: OS_REGION_NAME)")
	f.StringVar(&c.iface, "os-interface", "", "endpoint interface: public, internal or admin (default: OS_INTERFACE)")
	f.StringVar(&c.cacert, "os-cacert", "", "CA bundle to verify TLS (default: OS_CACERT)")
	f.BoolVar(&c.insecure, "insecure", false, "do not verify the server's TLS certificate")
}

// connect authenticates as the flags and environment say.
func (c *cloudFlags) connect(e *env, cmd *cobra.Command) (*openstack.Client, error) {
	conf := openstack.Config{Cloud: c.cloud, Region: c.region, Interface: c.iface, CACert: c.cacert}
	if cmd.Flags().Changed("insecure") {
		conf.Insecure = &c.insecure
	}
	cl, err := openstack.Connect(e.ctx, conf)
	if err != nil {
		return nil, fail("%v", err)
	}
	return cl, nil
}

// outputFlags are cliff's -f and -c.
type outputFlags struct {
	format  string
	columns []string
}

func (o *outputFlags) add(f *pflag.FlagSet) {
	f.StringVarP(&o.format, "format", "f", "table", "output format: table, json or value")
	f.StringArrayVarP(&o.columns, "column", "c", nil, "show only this column (repeatable)")
}

func (o *outputFlags) check() error {
	if err := osc.CheckFormat(o.format); err != nil {
		return usageError("%v", err)
	}
	return nil
}

// showFields are the image attributes `openstack image show` lists
// itself; everything else but the tags goes under "properties".
var showFields = map[string]bool{
	"status": true, "name": true, "container_format": true, "created_at": true, "size": true,
	"disk_format": true, "updated_at": true, "visibility": true, "min_disk": true, "protected": true,
	"id": true, "file": true, "checksum": true, "owner": true, "virtual_size": true, "min_ram": true,
	"schema": true,
}

// hiddenKeys are in Glance's answer but not in the CLI's view.
var hiddenKeys = map[string]bool{"self": true, "locations": true, "location": true, "direct_url": true}

// imageFields is an image as `openstack image show` presents it: null
// fields dropped, tags as a list, the rest under properties.
func imageFields(im openstack.Image, humanSize bool) map[string]any {
	out := map[string]any{"tags": im.Tags()}
	props := map[string]any{}
	for k, v := range im {
		switch {
		case v == nil || k == "tags" || hiddenKeys[k]:
		case showFields[k]:
			out[k] = machineValue(v)
		default:
			props[k] = v
		}
	}
	if humanSize {
		if n, ok := im.Int("size"); ok {
			out["size"] = formatSize(n)
		}
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	return out
}

// machineValue turns JSON numbers into integers where they are.
func machineValue(v any) any {
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return int64(f)
	}
	return v
}

// formatSize is osc_lib's format_size: powers of 1000, one decimal.
func formatSize(n int64) string {
	suffix := []string{"", "K", "M", "G", "T", "P", "E"}
	size, i := float64(n), 0
	for size >= 1000 && i < len(suffix)-1 {
		size /= 1000
		i++
	}
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", size), "0"), ".")
	return s + suffix[i]
}

// listColumns are `openstack image list` columns and the fields they show.
var listColumns = []struct{ name, field string }{
	{"ID", "id"}, {"Name", "name"}, {"Disk Format", "disk_format"}, {"Container Format", "container_format"},
	{"Size", "size"}, {"Checksum", "checksum"}, {"Status", "status"}, {"Visibility", "visibility"},
	{"Protected", "protected"}, {"Project", "owner"}, {"Tags", "tags"},
}

// listRows are the images as rows of the list columns (long, or ID, Name
// and Status).
func listRows(images []openstack.Image, long bool) ([]string, [][]any) {
	var names, fields []string
	for _, c := range listColumns {
		if long || c.name == "ID" || c.name == "Name" || c.name == "Status" {
			names = append(names, c.name)
			fields = append(fields, c.field)
		}
	}
	rows := make([][]any, len(images))
	for i, im := range images {
		row := make([]any, len(fields))
		for j, f := range fields {
			if f == "tags" {
				row[j] = im.Tags()
			} else {
				row[j] = machineValue(im[f])
			}
		}
		rows[i] = row
	}
	return names, rows
}

// sortImages sorts as --sort key[:asc|desc][,key...] asks (the CLI sorts
// by name unless told otherwise).
func sortImages(images []openstack.Image, spec string) error {
	type key struct {
		field string
		desc  bool
	}
	var keys []key
	for _, part := range strings.Split(spec, ",") {
		f, dir, _ := strings.Cut(part, ":")
		if dir != "" && dir != "asc" && dir != "desc" {
			return usageError("--sort %s: direction must be asc or desc", part)
		}
		keys = append(keys, key{f, dir == "desc"})
	}
	sort.SliceStable(images, func(a, b int) bool {
		for _, k := range keys {
			x, y := images[a].String(k.field), images[b].String(k.field)
			if x == y {
				continue
			}
			if k.desc {
				return x > y
			}
			return x < y
		}
		return false
	})
	return nil
}

// parseProperties reads --property k=v values.
func parseProperties(kvs []string) (map[string]string, error) {
	props := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("--property %s: expected KEY=VALUE", kv)
		}
		props[k] = v
	}
	return props, nil
}

// visibility is the one of --public/--private/--shared/--community given.
func visibility(cmd *cobra.Command) (string, error) {
	var set []string
	for _, v := range []string{"public", "private", "shared", "community"} {
		if on, _ := cmd.Flags().GetBool(v); on {
			set = append(set, v)
		}
	}
	if len(set) > 1 {
		return "", usageError("--%s and --%s exclude each other", set[0], set[1])
	}
	if len(set) == 0 {
		return "", nil
	}
	return set[0], nil
}

func addVisibilityFlags(f *pflag.FlagSet, verb string) {
	f.Bool("public", false, verb+" public (admin only on most clouds)")
	f.Bool("private", false, verb+" private (this project only)")
	f.Bool("shared", false, verb+" shared (this project and its members)")
	f.Bool("community", false, verb+" community (every project, not listed by default)")
}

package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qimg/qimg/openstack"
)

// cloudBootOptions are the flags of boot-test --cloud, named as the
// openstack CLI's `server create` names them.
type cloudBootOptions struct {
	cloud                   cloudFlags
	flavor, network, nic    string
	configDrive, keep       bool
	userData, keyName, name string
}

func (c *cloudBootOptions) flags(f *pflag.FlagSet) {
	c.cloud.add(f)
	f.StringVar(&c.flavor, "flavor", "", "--cloud: flavor of the server (name or ID)")
	f.StringVar(&c.network, "network", "", "--cloud: network of the server's NIC (name or ID)")
	f.StringVar(&c.nic, "nic", "", "--cloud: none (no NIC), auto, or net-id=ID")
	f.BoolVar(&c.configDrive, "config-drive", false, "--cloud: give the server a config drive")
	f.StringVar(&c.userData, "user-data", "", "--cloud: file of user-data for cloud-init")
	f.StringVar(&c.keyName, "key-name", "", "--cloud: an existing keypair (default: one made for the test and deleted after)")
	f.BoolVar(&c.keep, "keep", false, "--cloud: leave the server and keypair in place")
	f.StringVar(&c.name, "name", "", "--cloud: name of the server (default: qimg-boot-test-RANDOM)")
}

// network is the server's network as the package takes it: --network,
// or --nic none, auto or net-id=ID.
func (c *cloudBootOptions) networkChoice() (string, error) {
	if c.network != "" && c.nic != "" {
		return "", usageError("--network and --nic exclude each other")
	}
	switch {
	case c.nic == "" || c.nic == "none" || c.nic == "auto":
		return c.network + c.nic, nil
	case strings.HasPrefix(c.nic, "net-id="):
		if id := strings.TrimPrefix(c.nic, "net-id="); id != "" && !strings.Contains(id, ",") {
			return id, nil
		}
	}
	return "", usageError("--nic %s: expected none, auto or net-id=ID", c.nic)
}

// runCloud is boot-test --cloud.
func (o *bootTestOptions) runCloud(e *env, cmd *cobra.Command, nameOrID string) error {
	if o.local {
		return usageError("--local and --cloud exclude each other")
	}
	if err := refuseFlags(cmd, "--cloud", localOnly); err != nil {
		return err
	}
	opts, err := o.cloudOptions(e)
	if err != nil {
		return err
	}
	if o.log != "" {
		f, err := os.Create(o.log)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		opts.Log = f
	}
	cl, err := o.onCloud.cloud.connect(e, cmd)
	if err != nil {
		return err
	}
	opts.Image = nameOrID
	opts.Status = func(status string) { fmt.Fprintf(e.stderr, "boot-test: server %s: %s\n", opts.Name, status) }
	res, err := cl.BootTest(e.ctx, opts)
	if res != nil {
		printCloudResult(e.stdout, nameOrID, res)
	}
	if err != nil {
		if res != nil && e.ctx.Err() == nil {
			if res.Fault != "" {
				fmt.Fprintf(e.stderr, "fault: %s\n", res.Fault)
			}
			if res.Console != nil && len(res.Console.Tail) > 0 {
				printTail(e.stderr, res.Console.Tail)
			}
		}
		return fail("boot-test: %s: %v", nameOrID, err)
	}
	return nil
}

// cloudOptions turns the flags into openstack.BootOptions.
func (o *bootTestOptions) cloudOptions(e *env) (openstack.BootOptions, error) {
	c := &o.onCloud
	opts := openstack.BootOptions{
		Flavor: c.flavor, ConfigDrive: c.configDrive, KeyName: c.keyName, Keep: c.keep,
		NoDefaultExpect: o.noDefaultExpect, Timeout: o.timeout, Name: c.name,
	}
	if c.flavor == "" {
		return opts, usageError("boot-test --cloud needs --flavor")
	}
	var err error
	if opts.Network, err = c.networkChoice(); err != nil {
		return opts, err
	}
	if opts.Expect, err = o.expectations(); err != nil {
		return opts, err
	}
	if c.userData != "" {
		if opts.UserData, err = readSmallFile(c.userData, 64<<10); err != nil {
			return opts, fail("--user-data: %v", err)
		}
	}
	if opts.Name == "" {
		// named here so that the progress lines can name it
		opts.Name = openstack.BootTestName()
	}
	if o.console {
		opts.Console = e.stdout
	}
	return opts, nil
}

// readSmallFile reads a file of at most max bytes.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// printCloudResult prints how the server's boot went.
func printCloudResult(w io.Writer, image string, r *openstack.BootResult) {
	verdict := "booted"
	c := r.Console
	if c == nil || c.Failure != nil || len(c.Missing) > 0 || r.Fault != "" {
		verdict = "did not boot"
	}
	header := fmt.Sprintf("%s %s as server %s (%s), flavor %s, key %s", image, verdict, r.ServerName, r.ServerID, r.FlavorName, r.KeyName)
	if r.Active > 0 {
		header += fmt.Sprintf(", ACTIVE after %.1fs", r.Active.Seconds())
	}
	if c == nil {
		fmt.Fprintf(w, "boot-test: %s; status %s\n", header, r.Status)
	} else {
		printBootResult(w, fmt.Sprintf("%s, in %.1fs", header, c.Elapsed.Seconds()), c)
	}
	switch {
	case r.Kept:
		fmt.Fprintf(w, "  kept: server %s and keypair %s\n", r.ServerID, r.KeyName)
	case r.Deleted && r.CreatedKey:
		fmt.Fprintf(w, "  deleted: server %s and keypair %s\n", r.ServerID, r.KeyName)
	case r.Deleted:
		fmt.Fprintf(w, "  deleted: server %s\n", r.ServerID)
	}
}

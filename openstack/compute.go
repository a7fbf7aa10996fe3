package openstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
)

// computeMicroversion is the compute API version qimg speaks: 2.37 is the
// first that takes "networks": "none" (a server without a NIC) and that
// every Nova since Ocata serves.
const computeMicroversion = "2.37"

// maxConsoleLog bounds the console log kept from one answer: Nova's
// libvirt driver sends at most its last 100 KiB, and any more is not
// needed to follow a boot.
const maxConsoleLog = 1 << 20

// computeClient is a client of the compute service (Nova), made on use: a
// cloud with images only has no compute endpoint, and Glance's commands
// must work there.
func (c *Client) computeClient() (*gophercloud.ServiceClient, error) {
	sc, err := gcopenstack.NewComputeV2(c.provider, c.endpoint)
	if err != nil {
		return nil, fmt.Errorf("finding the compute service: %w", err)
	}
	sc.Microversion = computeMicroversion
	return sc, nil
}

// networkClient is a client of the network service (Neutron), made on use.
func (c *Client) networkClient() (*gophercloud.ServiceClient, error) {
	sc, err := gcopenstack.NewNetworkV2(c.provider, c.endpoint)
	if err != nil {
		return nil, fmt.Errorf("finding the network service: %w", err)
	}
	return sc, nil
}

// FindFlavor finds a flavor by ID or, failing that, by name, among the
// flavors the project may use.
func (c *Client) FindFlavor(ctx context.Context, nameOrID string) (*flavors.Flavor, error) {
	sc, err := c.computeClient()
	if err != nil {
		return nil, err
	}
	f, err := flavors.Get(ctx, sc, nameOrID).Extract()
	if err == nil {
		return f, nil
	}
	if err = apiError(err); !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	pages, err := flavors.ListDetail(sc, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return nil, err
	}
	var found []flavors.Flavor
	for _, f := range all {
		if f.Name == nameOrID {
			found = append(found, f)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no flavor with a name or ID of '%s' exists: %w", nameOrID, ErrNotFound)
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("more than one flavor exists with the name '%s'", nameOrID)
}

// FindNetwork finds a network by ID or name and returns its ID.
func (c *Client) FindNetwork(ctx context.Context, nameOrID string) (string, error) {
	sc, err := c.networkClient()
	if err != nil {
		return "", err
	}
	if looksLikeUUID(nameOrID) {
		n, err := networks.Get(ctx, sc, nameOrID).Extract()
		if err == nil {
			return n.ID, nil
		}
		if err = apiError(err); !errors.Is(err, ErrNotFound) {
			return "", err
		}
	}
	pages, err := networks.List(sc, networks.ListOpts{Name: nameOrID}).AllPages(ctx)
	if err != nil {
		return "", apiError(err)
	}
	found, err := networks.ExtractNetworks(pages)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no network with a name or ID of '%s' exists: %w", nameOrID, ErrNotFound)
	case 1:
		return found[0].ID, nil
	}
	return "", fmt.Errorf("more than one network exists with the name '%s'", nameOrID)
}

// KeyPairExists reports whether the user has a keypair of that name.
func (c *Client) KeyPairExists(ctx context.Context, name string) (bool, error) {
	sc, err := c.computeClient()
	if err != nil {
		return false, err
	}
	_, err = keypairs.Get(ctx, sc, name, nil).Extract()
	if err = apiError(err); errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateKeyPair creates a keypair whose private key Nova makes and qimg
// forgets (it is there for cloud-init to install, not to log in with).
func (c *Client) CreateKeyPair(ctx context.Context, name string) error {
	sc, err := c.computeClient()
	if err != nil {
		return err
	}
	_, err = keypairs.Create(ctx, sc, keypairs.CreateOpts{Name: name}).Extract()
	return apiError(err)
}

// DeleteKeyPair deletes a keypair; one already gone is not an error.
func (c *Client) DeleteKeyPair(ctx context.Context, name string) error {
	sc, err := c.computeClient()
	if err != nil {
		return err
	}
	err = apiError(keypairs.Delete(ctx, sc, name, nil).ExtractErr())
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// GetServer reads a server.
func (c *Client) GetServer(ctx context.Context, id string) (*servers.Server, error) {
	sc, err := c.computeClient()
	if err != nil {
		return nil, err
	}
	s, err := servers.Get(ctx, sc, id).Extract()
	return s, apiError(err)
}

// createServer asks Nova for a server and returns its ID.
func (c *Client) createServer(ctx context.Context, opts servers.CreateOptsBuilder) (string, error) {
	sc, err := c.computeClient()
	if err != nil {
		return "", err
	}
	s, err := servers.Create(ctx, sc, opts, nil).Extract()
	if err != nil {
		return "", apiError(err)
	}
	return s.ID, nil
}

// DeleteServer deletes a server and waits until Nova no longer has it
// (the delete itself is asynchronous), polling every poll; a server
// already gone is not an error.
func (c *Client) DeleteServer(ctx context.Context, id string, poll time.Duration) error {
	sc, err := c.computeClient()
	if err != nil {
		return err
	}
	err = apiError(servers.Delete(ctx, sc, id).ExtractErr())
	for ; err == nil; _, err = c.GetServer(ctx, id) {
		if err := sleep(ctx, poll); err != nil {
			return fmt.Errorf("server %s is still being deleted: %w", id, err)
		}
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ConsoleLog is the server's console log as Nova keeps it (its last 100
// KiB with the libvirt driver), at most maxConsoleLog bytes of its end.
func (c *Client) ConsoleLog(ctx context.Context, id string) (string, error) {
	sc, err := c.computeClient()
	if err != nil {
		return "", err
	}
	out, err := servers.ShowConsoleOutput(ctx, sc, id, servers.ShowConsoleOutputOpts{}).Extract()
	if err != nil {
		return "", apiError(err)
	}
	if len(out) > maxConsoleLog {
		out = out[len(out)-maxConsoleLog:]
	}
	return out, nil
}

package openstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/image"
)

// Errors of a boot test on a cloud, besides boot.ErrFailed (a failure
// marker on the console) and boot.ErrTimeout.
var (
	// ErrServerFault means Nova put the server in ERROR; the error's
	// text holds the server's fault.
	ErrServerFault = errors.New("server went to ERROR")
	// ErrServerStopped means the server left ACTIVE (shut off, paused,
	// deleted) before every expected marker appeared.
	ErrServerStopped = errors.New("server stopped")
)

// Defaults of BootOptions.
const (
	// DefaultBootTimeout covers scheduling, the image's download to the
	// compute host and a boot under TCG on a busy host.
	DefaultBootTimeout = 15 * time.Minute
	// DefaultBootPoll is how often the server and its console are read.
	DefaultBootPoll = 2 * time.Second
	// maxUserData is Nova's limit on the base64 of the user-data.
	maxUserData = 65535
	// cleanupTimeout bounds deleting what a boot test made.
	cleanupTimeout = 3 * time.Minute
	// statusEvery is how often the server's status is read while its
	// console is: every request costs the cloud (Keystone above all), and
	// a server that stopped only matters when the console goes quiet.
	statusEvery = 15 * time.Second
	// settlePolls is how many more times the console is read after a
	// failure marker while it still grows: what explains a failure often
	// follows the marker.
	settlePolls = 3
)

// BootOptions say what to boot on the cloud and what to wait for.
type BootOptions struct {
	Image  string // name or ID of an image in Glance
	Flavor string // name or ID of a flavor
	// Network is a network's name or ID; "none" boots without a NIC,
	// "auto" lets Nova choose (or make) one, and "" sends nothing, which
	// works where the project has exactly one network.
	Network     string
	ConfigDrive bool
	UserData    []byte
	// KeyName is an existing keypair to give the server; "" creates one
	// for the test (and deletes it afterwards).
	KeyName string
	// Name of the server; "" is qimg-boot-test-<random>.
	Name string
	// Expect are markers to wait for besides the defaults (the login
	// prompt and cloud-init's final message); NoDefaultExpect waits for
	// these alone.
	Expect          []*regexp.Regexp
	NoDefaultExpect bool
	// Console receives the clean console lines as they come; Log the raw
	// console text. Either may be nil.
	Console io.Writer
	Log     io.Writer
	// Timeout for the whole test, from the create request to the last
	// marker; 0 is DefaultBootTimeout.
	Timeout time.Duration
	// Keep leaves the server and the keypair the test made in place.
	Keep bool
	// Status, if set, is told each status the server is seen in (BUILD,
	// ACTIVE, ERROR, ...) and "deleted" after the cleanup.
	Status func(status string)
	// PollInterval is how often the server and its console are read; 0
	// is DefaultBootPoll.
	PollInterval time.Duration
}

// BootResult is what a boot test on a cloud showed. Times are since the
// create request.
type BootResult struct {
	ServerID, ServerName string
	ImageID, FlavorID    string
	FlavorName           string
	KeyName              string
	CreatedKey           bool   // KeyName was made for the test
	Status               string // the server's last status seen
	// Fault is the server's fault (message, and details where Nova
	// shows them) when it went to ERROR.
	Fault string
	// Active is when the server became ACTIVE; 0 if it never did.
	Active time.Duration
	// Console holds the phases and markers seen on the console log and
	// its last lines; never nil once the server was created.
	Console *boot.Result
	// Kept is true when the server and keypair were left in place
	// (BootOptions.Keep); Deleted when the cleanup finished.
	Kept, Deleted bool
}

// resolved checks the options and fills in the defaults.
func (o BootOptions) resolved() (BootOptions, error) {
	if o.Image == "" || o.Flavor == "" {
		return o, image.Errorf(image.ErrInvalidArgument, "boot test: an image and a flavor are needed")
	}
	if o.Timeout < 0 || o.PollInterval < 0 {
		return o, image.Errorf(image.ErrInvalidArgument, "boot test: negative time-out or poll interval")
	}
	if n := base64.StdEncoding.EncodedLen(len(o.UserData)); n > maxUserData {
		return o, image.Errorf(image.ErrInvalidArgument, "boot test: user-data is %d bytes in base64; Nova takes at most %d", n, maxUserData)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultBootTimeout
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultBootPoll
	}
	if o.Name == "" {
		o.Name = BootTestName()
	}
	if o.Status == nil {
		o.Status = func(string) {}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, nil
}

// BootTestName is a new name for a boot test's server (and keypair):
// qimg-boot-test- and 8 random hex digits.
func BootTestName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "qimg-boot-test-" + hex.EncodeToString(b)
}

// BootTest boots a server from an image and watches its console log until
// every expected marker has appeared (success), a failure marker appears,
// the server goes to ERROR or leaves ACTIVE, the time-out passes or ctx
// ends. Whatever happens, the server and the keypair it made are deleted
// before BootTest returns (unless Keep), also when ctx is cancelled: the
// cleanup runs on a context of its own.
//
// Once the server was asked for, the BootResult is never nil, also with
// an error, so that callers can show the fault or the console's tail.
func (c *Client) BootTest(ctx context.Context, opts BootOptions) (res *BootResult, err error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	im, err := c.FindImage(ctx, o.Image)
	if err != nil {
		return nil, err
	}
	fl, err := c.FindFlavor(ctx, o.Flavor)
	if err != nil {
		return nil, err
	}
	nets, err := c.serverNetworks(ctx, o.Network)
	if err != nil {
		return nil, err
	}
	res = &BootResult{ServerName: o.Name, ImageID: im.ID(), FlavorID: fl.ID, FlavorName: fl.Name, KeyName: o.KeyName}
	defer func() { err = c.cleanUp(ctx, o, res, err) }()
	if err := c.ensureKey(ctx, o.KeyName, res); err != nil {
		return res, err
	}
	// The test's own deadline has boot.ErrTimeout as its cause, told
	// apart from the caller's.
	tctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, boot.ErrTimeout)
	defer cancel()
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) }
	con := boot.NewConsole(boot.NewWatcher(o.markers()), clock, o.Console)
	defer func() { con.Flush(); res.Console = con.Result(clock()) }()
	create := keypairs.CreateOptsExt{KeyName: res.KeyName, CreateOptsBuilder: servers.CreateOpts{
		Name: o.Name, ImageRef: im.ID(), FlavorRef: fl.ID, Networks: nets,
		ConfigDrive: &o.ConfigDrive, UserData: encodedUserData(o.UserData),
	}}
	if res.ServerID, err = c.createServer(tctx, create); err != nil {
		return res, verdict(tctx, fmt.Errorf("creating server %s: %w", o.Name, err))
	}
	if err := c.waitServerActive(tctx, o, res); err != nil {
		return res, verdict(tctx, err)
	}
	res.Active = clock()
	return res, verdict(tctx, c.watchConsole(tctx, o, res, con))
}

// markers are what the console is watched for. A guest given a config
// drive or user-data has a seed: cloud-init finishing without a data
// source means it missed it.
func (o BootOptions) markers() boot.Markers {
	return boot.WatchMarkers(o.Expect, o.NoDefaultExpect, o.ConfigDrive || len(o.UserData) > 0)
}

// encodedUserData is the user-data in base64, as Nova takes it.
// gophercloud encodes only what is not valid base64 already, which would
// send a user-data that happens to be base64 (a word of letters)
// undecoded.
func encodedUserData(b []byte) []byte {
	if b == nil {
		return nil
	}
	return []byte(base64.StdEncoding.EncodeToString(b))
}

// serverNetworks is the networks field of the server: "none", "auto", a
// network's ID, or nothing.
func (c *Client) serverNetworks(ctx context.Context, network string) (any, error) {
	switch network {
	case "":
		return nil, nil
	case "none", "auto":
		return network, nil
	}
	id, err := c.FindNetwork(ctx, network)
	if err != nil {
		return nil, err
	}
	return []servers.Network{{UUID: id}}, nil
}

// ensureKey checks the named keypair, or creates one for the test.
func (c *Client) ensureKey(ctx context.Context, name string, res *BootResult) error {
	if name != "" {
		ok, err := c.KeyPairExists(ctx, name)
		if err == nil && !ok {
			err = fmt.Errorf("no keypair named '%s' exists: %w", name, ErrNotFound)
		}
		return err
	}
	res.KeyName = res.ServerName
	if err := c.CreateKeyPair(ctx, res.KeyName); err != nil {
		return fmt.Errorf("creating keypair %s: %w", res.KeyName, err)
	}
	res.CreatedKey = true
	return nil
}

// verdict makes an error that the test's own deadline caused (a request
// it cut short) a boot.ErrTimeout.
func verdict(ctx context.Context, err error) error {
	if err != nil && !errors.Is(err, boot.ErrTimeout) && errors.Is(context.Cause(ctx), boot.ErrTimeout) {
		return fmt.Errorf("%w: %w", err, boot.ErrTimeout)
	}
	return err
}

// waitServerActive polls the server until it is ACTIVE, and fails with
// its fault when it goes to ERROR (gophercloud's WaitForStatus would wait
// on).
func (c *Client) waitServerActive(ctx context.Context, o BootOptions, res *BootResult) error {
	for {
		s, err := c.GetServer(ctx, res.ServerID)
		if err != nil {
			return fmt.Errorf("server %s: %w", res.ServerID, err)
		}
		c.seen(o, res, s.Status)
		switch s.Status {
		case "ACTIVE":
			return nil
		case "ERROR":
			res.Fault = faultText(s.Fault)
			return fmt.Errorf("server %s: %s: %w", res.ServerID, res.Fault, ErrServerFault)
		}
		if err := sleep(ctx, o.PollInterval); err != nil {
			return fmt.Errorf("server %s still %s: %w", res.ServerID, s.Status, err)
		}
	}
}

// seen records a server's status and tells the caller when it changed.
func (c *Client) seen(o BootOptions, res *BootResult, status string) {
	if status != res.Status {
		res.Status = status
		o.Status(status)
	}
}

// faultText is a server's fault as one line.
func faultText(f servers.Fault) string {
	msg := f.Message
	if msg == "" {
		msg = "no fault recorded"
	}
	if d := strings.TrimSpace(f.Details); d != "" && d != msg {
		msg += " (" + strings.Join(strings.Fields(lastLines(d, 3)), " ") + ")"
	}
	return msg
}

// lastLines is the last n lines of s (a fault's details are a traceback
// whose end says the most).
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// watchConsole reads the console log and the server's status until the
// console has decided, the server leaves ACTIVE, or ctx ends.
func (c *Client) watchConsole(ctx context.Context, o BootOptions, res *BootResult, con *boot.Console) error {
	var follow consoleFollower
	checked := time.Now() // ACTIVE was just seen
	for {
		if err := c.readConsole(ctx, o, res, con, &follow); err != nil {
			return err
		}
		switch con.State() {
		case boot.Succeeded:
			return nil
		case boot.Failed:
			c.settle(ctx, o, res, con, &follow)
			return consoleFailure(res, con)
		}
		if time.Since(checked) < statusEvery {
			if err := sleep(ctx, o.PollInterval); err != nil {
				return consoleWaitError(ctx, o, res, con)
			}
			continue
		}
		checked = time.Now()
		s, err := c.GetServer(ctx, res.ServerID)
		if err != nil {
			return fmt.Errorf("server %s: %w", res.ServerID, err)
		}
		c.seen(o, res, s.Status)
		if s.Status != "ACTIVE" {
			if s.Fault.Message != "" {
				res.Fault = faultText(s.Fault)
			}
			return fmt.Errorf("server %s is %s, still waiting for %s: %w", res.ServerID, s.Status,
				missing(con), ErrServerStopped)
		}
		if err := sleep(ctx, o.PollInterval); err != nil {
			return consoleWaitError(ctx, o, res, con)
		}
	}
}

// sleep waits for d, or returns ctx's cause when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		return nil
	}
}

// consoleWaitError is the error of a wait for markers that ctx ended.
func consoleWaitError(ctx context.Context, o BootOptions, res *BootResult, con *boot.Console) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, boot.ErrTimeout) {
		return fmt.Errorf("server %s: after %v still waiting for %s: %w", res.ServerID, o.Timeout, missing(con), cause)
	}
	return fmt.Errorf("server %s: still waiting for %s: %w", res.ServerID, missing(con), cause)
}

// missing names the expected markers not seen yet.
func missing(con *boot.Console) string {
	var quoted []string
	for _, m := range con.Result(0).Missing {
		quoted = append(quoted, strconv.Quote(m))
	}
	return strings.Join(quoted, ", ")
}

// readConsole feeds what is new in the console log to the log and the
// console. A console not ready yet (409 Conflict) is empty.
func (c *Client) readConsole(ctx context.Context, o BootOptions, res *BootResult, con *boot.Console, follow *consoleFollower) error {
	text, err := c.ConsoleLog(ctx, res.ServerID)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("console log of server %s: %w", res.ServerID, err)
	}
	if delta := follow.next(text); delta != "" {
		o.Log.Write([]byte(delta))
		con.Write([]byte(delta))
	}
	return nil
}

// settle reads the console a few more times while it grows, so that the
// tail holds what follows a failure marker.
func (c *Client) settle(ctx context.Context, o BootOptions, res *BootResult, con *boot.Console, follow *consoleFollower) {
	for range settlePolls {
		if sleep(ctx, o.PollInterval) != nil {
			return
		}
		before := follow.prev
		if c.readConsole(ctx, o, res, con, follow) != nil || follow.prev == before {
			return
		}
	}
}

// consoleFailure is the error of a failure marker.
func consoleFailure(res *BootResult, con *boot.Console) error {
	f := con.Result(0).Failure
	return fmt.Errorf("server %s: %s at %.1fs: %q: %w", res.ServerID, f.Name, f.At.Seconds(), f.Line, boot.ErrFailed)
}

// cleanUp deletes the server and the keypair the test made, unless Keep,
// on a context that ctx's cancellation does not end; a failure to delete
// is added to err. A server whose create request failed may exist all the
// same (the answer was lost, or ctx ended on the way): it is looked for by
// its name, which is the test's own.
func (c *Client) cleanUp(ctx context.Context, o BootOptions, res *BootResult, err error) error {
	if o.Keep {
		res.Kept = true
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var problems []string
	ids := []string{res.ServerID}
	if res.ServerID == "" {
		ids = c.serversNamed(dctx, res.ServerName)
	}
	for _, id := range ids {
		if derr := c.DeleteServer(dctx, id, o.PollInterval); derr != nil {
			problems = append(problems, fmt.Sprintf("deleting server %s: %v", id, derr))
		}
	}
	if res.CreatedKey {
		if derr := c.DeleteKeyPair(dctx, res.KeyName); derr != nil {
			problems = append(problems, fmt.Sprintf("deleting keypair %s: %v", res.KeyName, derr))
		}
	}
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		if err == nil {
			return errors.New(msg)
		}
		return fmt.Errorf("%w (and %s)", err, msg)
	}
	res.Deleted = true
	o.Status("deleted")
	return err
}

// serversNamed lists the IDs of the servers with exactly that name ("" on
// any error: the name is only a second chance to find a lost server).
func (c *Client) serversNamed(ctx context.Context, name string) []string {
	sc, err := c.computeClient()
	if err != nil {
		return nil
	}
	pages, err := servers.List(sc, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$"}).AllPages(ctx)
	if err != nil {
		return nil
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil
	}
	var ids []string
	for _, s := range all {
		if s.Name == name {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

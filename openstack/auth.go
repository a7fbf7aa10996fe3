package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// Config says which cloud to use and how to reach it, as the openstack
// CLI's global options do. The zero value reads OS_CLOUD and the OS_*
// variables of the process environment.
type Config struct {
	// Cloud names an entry of clouds.yaml (--os-cloud); empty means
	// OS_CLOUD, and if that is empty too, the OS_* variables alone.
	Cloud string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Region, Interface, CACert and Insecure override clouds.yaml and
	// OS_REGION_NAME, OS_INTERFACE, OS_CACERT and OS_INSECURE
	// (--os-region-name, --os-interface, --os-cacert, --insecure).
	Region    string
	Interface string
	CACert    string
	Insecure  *bool
	// CloudsFile replaces the search for clouds.yaml (the CLI's
	// OS_CLIENT_CONFIG_FILE, which is also read).
	CloudsFile string
	// Transport carries every request (nil: a clone of
	// http.DefaultTransport, honouring HTTPS_PROXY and friends). Its TLS
	// settings are replaced by the cloud's.
	Transport *http.Transport
	// Wrap, if set, wraps the transport, e.g. to watch or alter traffic
	// in tests.
	Wrap func(http.RoundTripper) http.RoundTripper
}

// reauthMargin is how long before its expiry a token is renewed before a
// request, so that a long upload starts with a token that lasts.
const reauthMargin = 10 * time.Second

func (c Config) getenv(k string) string {
	if c.Getenv != nil {
		return c.Getenv(k)
	}
	return os.Getenv(k)
}

// firstEnv is the first non-empty value of the variables.
func (c Config) firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := c.getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// resolved is everything authentication needs.
type resolved struct {
	auth     gophercloud.AuthOptions
	endpoint gophercloud.EndpointOpts
	tls      *tls.Config
}

// resolve builds the authentication options: clouds.yaml when a cloud is
// named (OS_* variables override its values, as in the CLI), the OS_*
// variables otherwise.
func (c Config) resolve() (resolved, error) {
	cloud := c.Cloud
	if cloud == "" {
		cloud = c.getenv("OS_CLOUD")
	}
	var r resolved
	var err error
	if cloud != "" {
		r, err = c.fromClouds(cloud)
	} else {
		r, err = c.fromEnv()
	}
	if err != nil {
		return r, err
	}
	if r.auth.IdentityEndpoint == "" {
		return r, errors.New("no cloud given: use --os-cloud or OS_CLOUD (clouds.yaml), or set OS_AUTH_URL and the other OS_* variables")
	}
	// A token cannot be renewed; every other method can.
	r.auth.AllowReauth = r.auth.TokenID == ""
	return r, nil
}

// fromClouds reads the named cloud of clouds.yaml (and secure.yaml).
func (c Config) fromClouds(cloud string) (resolved, error) {
	opts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
	if f := firstNonEmpty(c.CloudsFile, c.getenv("OS_CLIENT_CONFIG_FILE")); f != "" {
		opts = append(opts, clouds.WithLocations(f))
	}
	env := c.envAuth()
	for _, o := range []struct {
		v string
		f func(string) clouds.ParseOption
	}{
		{env.IdentityEndpoint, clouds.WithIdentityEndpoint},
		{env.Username, clouds.WithUsername},
		{env.UserID, clouds.WithUserID},
		{env.Password, clouds.WithPassword},
		{env.TokenID, clouds.WithToken},
		{env.ApplicationCredentialID, clouds.WithApplicationCredentialID},
		{env.ApplicationCredentialName, clouds.WithApplicationCredentialName},
		{env.ApplicationCredentialSecret, clouds.WithApplicationCredentialSecret},
		{c.firstEnv("OS_PROJECT_ID", "OS_TENANT_ID"), clouds.WithProjectID},
		{c.firstEnv("OS_PROJECT_NAME", "OS_TENANT_NAME"), clouds.WithProjectName},
		{c.region(), clouds.WithRegion},
		{c.iface(), clouds.WithEndpointType},
		{c.caCert(), clouds.WithCACertPath},
		{c.getenv("OS_CERT"), clouds.WithClientCertPath},
		{c.getenv("OS_KEY"), clouds.WithClientKeyPath},
	} {
		if o.v != "" {
			opts = append(opts, o.f(o.v))
		}
	}
	if ins, ok := c.insecure(); ok {
		opts = append(opts, clouds.WithInsecure(ins))
	}
	ao, eo, tlsConf, err := clouds.Parse(opts...)
	if err != nil {
		return resolved{}, fmt.Errorf("cloud %q: %w", cloud, err)
	}
	return resolved{auth: ao, endpoint: eo, tls: tlsConf}, nil
}

// envAuth maps the identity variables of an openrc file. Unlike
// gophercloud's AuthOptionsFromEnv it reads the user and project domains
// (OS_USER_DOMAIN_*, OS_PROJECT_DOMAIN_*), which every Keystone v3
// openrc sets.
func (c Config) envAuth() gophercloud.AuthOptions {
	ao := gophercloud.AuthOptions{
		IdentityEndpoint:            c.getenv("OS_AUTH_URL"),
		Username:                    c.getenv("OS_USERNAME"),
		UserID:                      c.getenv("OS_USER_ID"),
		Password:                    c.getenv("OS_PASSWORD"),
		Passcode:                    c.getenv("OS_PASSCODE"),
		TokenID:                     c.getenv("OS_TOKEN"),
		ApplicationCredentialID:     c.getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   c.getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: c.getenv("OS_APPLICATION_CREDENTIAL_SECRET"),
		DomainID:                    c.firstEnv("OS_USER_DOMAIN_ID", "OS_DOMAIN_ID"),
		DomainName:                  c.firstEnv("OS_USER_DOMAIN_NAME", "OS_DOMAIN_NAME"),
	}
	if ao.UserID != "" {
		// A user ID is unique: a domain beside it is refused by Keystone.
		ao.DomainID, ao.DomainName = "", ""
	}
	return ao
}

// scopeFromEnv is the scope an openrc asks for: a project (by ID, or by
// name in its domain), a domain, or the system.
func (c Config) scopeFromEnv() *gophercloud.AuthScope {
	switch {
	case c.getenv("OS_SYSTEM_SCOPE") != "":
		return &gophercloud.AuthScope{System: true}
	case c.firstEnv("OS_PROJECT_ID", "OS_TENANT_ID") != "":
		return &gophercloud.AuthScope{ProjectID: c.firstEnv("OS_PROJECT_ID", "OS_TENANT_ID")}
	case c.firstEnv("OS_PROJECT_NAME", "OS_TENANT_NAME") != "":
		return &gophercloud.AuthScope{
			ProjectName: c.firstEnv("OS_PROJECT_NAME", "OS_TENANT_NAME"),
			DomainID:    c.firstEnv("OS_PROJECT_DOMAIN_ID", "OS_DOMAIN_ID"),
			DomainName:  c.firstEnv("OS_PROJECT_DOMAIN_NAME", "OS_DOMAIN_NAME"),
		}
	case c.getenv("OS_DOMAIN_ID") != "":
		return &gophercloud.AuthScope{DomainID: c.getenv("OS_DOMAIN_ID")}
	case c.getenv("OS_DOMAIN_NAME") != "":
		return &gophercloud.AuthScope{DomainName: c.getenv("OS_DOMAIN_NAME")}
	}
	return nil
}

// fromEnv reads the OS_* variables alone.
func (c Config) fromEnv() (resolved, error) {
	ao := c.envAuth()
	if ao.ApplicationCredentialID == "" && ao.ApplicationCredentialName == "" {
		// An application credential carries its own scope.
		ao.Scope = c.scopeFromEnv()
	}
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return resolved{}, err
	}
	return resolved{
		auth:     ao,
		endpoint: gophercloud.EndpointOpts{Region: c.region(), Availability: availability(c.iface())},
		tls:      tlsConf,
	}, nil
}

func (c Config) region() string { return firstNonEmpty(c.Region, c.getenv("OS_REGION_NAME")) }

func (c Config) iface() string {
	return firstNonEmpty(c.Interface, c.getenv("OS_INTERFACE"), c.getenv("OS_ENDPOINT_TYPE"))
}

func (c Config) caCert() string { return firstNonEmpty(c.CACert, c.getenv("OS_CACERT")) }

// insecure is --insecure or OS_INSECURE; ok is false when neither says.
func (c Config) insecure() (v, ok bool) {
	if c.Insecure != nil {
		return *c.Insecure, true
	}
	switch strings.ToLower(c.getenv("OS_INSECURE")) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	return false, false
}

// tlsConfig is the TLS setup of the OS_* variables: a CA bundle, a client
// certificate, and whether to verify at all.
func (c Config) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{}
	if ca := c.caCert(); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("OS_CACERT: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OS_CACERT %s: no PEM certificate found", ca)
		}
		conf.RootCAs = pool
	}
	if cert, key := c.getenv("OS_CERT"), c.getenv("OS_KEY"); cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("OS_CERT/OS_KEY: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	conf.InsecureSkipVerify, _ = c.insecure()
	return conf, nil
}

func availability(iface string) gophercloud.Availability {
	switch strings.TrimSuffix(iface, "URL") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Connect authenticates to the cloud and returns a client of its image
// service. Tokens are renewed when they expire (and shortly before, ahead
// of a request), except a token given as OS_TOKEN, which cannot be.
func Connect(ctx context.Context, c Config) (*Client, error) {
	r, err := c.resolve()
	if err != nil {
		return nil, err
	}
	pc, err := gcopenstack.NewClient(r.auth.IdentityEndpoint)
	if err != nil {
		return nil, err
	}
	pc.HTTPClient = http.Client{Transport: c.roundTripper(r.tls)}
	pc.UserAgent.Prepend("qimg")
	if r.auth.AllowReauth {
		pc.ReauthBeforeTokenExpiration = reauthMargin
	}
	if err := gcopenstack.Authenticate(ctx, pc, r.auth); err != nil {
		return nil, fmt.Errorf("authenticating at %s: %w", r.auth.IdentityEndpoint, err)
	}
	img, err := gcopenstack.NewImageV2(pc, r.endpoint)
	if err != nil {
		return nil, fmt.Errorf("finding the image service: %w", err)
	}
	return &Client{provider: pc, image: img, endpoint: r.endpoint}, nil
}

// roundTripper is the transport of every request: the caller's (or a
// clone of the default) with the cloud's TLS settings, sending uploads
// with a Content-Length.
func (c Config) roundTripper(tlsConf *tls.Config) http.RoundTripper {
	t := c.Transport
	if t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	} else {
		t = t.Clone()
	}
	if tlsConf != nil {
		t.TLSClientConfig = tlsConf
	}
	var rt http.RoundTripper = t
	if c.Wrap != nil {
		rt = c.Wrap(rt)
	}
	return lengthTransport{rt}
}

package router

// ForwardingHeader is a request header that apps and frameworks trust to
// say who the client is, how it reached the edge (scheme, port, host) or
// what it asked for (the original path or method).
type ForwardingHeader struct {
	Name string // canonical MIME form (textproto.CanonicalMIMEHeaderKey)
	// Set: the router sets it from the connection on every request.
	Set bool
}

// ForwardingHeaders is the one list both engines act on. From a peer
// outside Options.TrustedProxies every one of them is removed from the
// request (a client could otherwise tell an app it is on HTTPS, that its
// address is another, or that it asked for /admin), and those marked Set
// are written from the connection. From a trusted peer they are passed on
// as it sent them; X-Forwarded-For and Forwarded are appended to, and the
// other Set ones are written from the connection only when the peer sent
// none. docs/router.md lists them with the software that reads each.
var ForwardingHeaders = []ForwardingHeader{
	// Set by the router.
	{Name: "X-Forwarded-For", Set: true},
	{Name: "X-Forwarded-Host", Set: true},
	{Name: "X-Forwarded-Proto", Set: true},
	{Name: "Forwarded", Set: true},
	{Name: "X-Real-Ip", Set: true},
	{Name: "X-Forwarded-Port", Set: true},
	// The client's address.
	{Name: "X-Client-Ip"},
	{Name: "Client-Ip"},
	{Name: "True-Client-Ip"},
	{Name: "Cf-Connecting-Ip"},
	{Name: "Cf-Connecting-Ipv6"},
	{Name: "Fastly-Client-Ip"},
	{Name: "X-Cluster-Client-Ip"},
	{Name: "X-Proxyuser-Ip"},
	{Name: "X-Original-Forwarded-For"},
	{Name: "X-Forwarded"},
	{Name: "Forwarded-For"},
	{Name: "X-Envoy-External-Address"},
	{Name: "X-Envoy-Internal"},
	// The scheme.
	{Name: "X-Forwarded-Ssl"},
	{Name: "X-Forwarded-Scheme"},
	{Name: "X-Forwarded-Protocol"},
	{Name: "X-Url-Scheme"},
	{Name: "X-Scheme"},
	{Name: "Front-End-Https"},
	{Name: "X-Arr-Ssl"},
	{Name: "Cf-Visitor"},
	// The host.
	{Name: "X-Forwarded-Server"},
	{Name: "X-Original-Host"},
	{Name: "X-Host"},
	// The original path, prefix or method.
	{Name: "X-Original-Url"},
	{Name: "X-Rewrite-Url"},
	{Name: "X-Original-Uri"},
	{Name: "X-Forwarded-Prefix"},
	{Name: "X-Forwarded-Uri"},
	{Name: "X-Forwarded-Path"},
	{Name: "X-Forwarded-Method"},
	{Name: "X-Envoy-Original-Path"},
	{Name: "Script-Name"},
	{Name: "X-Script-Name"},
	// The client's certificate, as a TLS-terminating proxy passes it.
	{Name: "X-Forwarded-Client-Cert"},
}

// maxForwardingName is the length of the longest name in ForwardingHeaders.
const maxForwardingName = 24

// forwardingNames: ForwardingHeaders by lowercase name.
var forwardingNames = func() map[string]ForwardingHeader {
	m := make(map[string]ForwardingHeader, len(ForwardingHeaders))
	for _, h := range ForwardingHeaders {
		if len(h.Name) > maxForwardingName {
			panic("router: maxForwardingName is too small for " + h.Name)
		}
		m[lowerName(h.Name)] = h
	}
	return m
}()

func lowerName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// LookupForwarding returns the entry of ForwardingHeaders that name is,
// in any case, and with '_' read as '-': CGI and WSGI servers turn both
// into the same variable (X_Real_IP reaches an app as HTTP_X_REAL_IP),
// so an underscore spelling is the same header to them. exact is false
// for such a spelling. It does not allocate.
func LookupForwarding[S hostOrPath](name S) (h ForwardingHeader, ok, exact bool) {
	if len(name) > maxForwardingName {
		return ForwardingHeader{}, false, false
	}
	var low [maxForwardingName]byte
	exact = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c, exact = '-', false
		}
		low[i] = c
	}
	h, ok = forwardingNames[string(low[:len(name)])]
	return h, ok, ok && exact
}

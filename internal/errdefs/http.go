package errdefs

// The statuses are numbers, not net/http's names: this package is linked
// into the container init (cmd/berth-init), which must stay small.

// HTTPStatus is the one place an error becomes an HTTP status, for the
// Engine API and for the monitor's protocol alike.
func HTTPStatus(err error) int {
	switch ClassOf(err) {
	case ErrNotFound:
		return 404
	case ErrInvalid:
		return 400
	case ErrConflict:
		return 409
	case ErrUnauthorized:
		return 401
	case ErrForbidden:
		return 403
	case ErrNotModified:
		return 304
	case ErrNotImplemented:
		return 501
	case ErrUnavailable, ErrResourceLimited:
		return 503
	case ErrCanceled:
		return 499 // client closed request, as nginx and moby's logs say
	case ErrDeadline:
		return 504
	}
	return 500
}

// FromHTTPStatus classifies err, an error a server answered with status,
// so that errors.Is works on the client side as on the server side.
func FromHTTPStatus(status int, err error) error {
	switch status {
	case 404:
		return NotFound(err)
	case 400:
		return Invalid(err)
	case 409:
		return Conflict(err)
	case 401:
		return Unauthorized(err)
	case 403:
		return Forbidden(err)
	case 304:
		return NotModified(err)
	case 501:
		return NotImplemented(err)
	case 503:
		return Unavailable(err)
	}
	return err
}

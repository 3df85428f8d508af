package errdefs

import "net/http"

// HTTPStatus is the one place an error becomes an HTTP status, for the
// Engine API and for the monitor's protocol alike.
func HTTPStatus(err error) int {
	switch ClassOf(err) {
	case ErrNotFound:
		return http.StatusNotFound
	case ErrInvalid:
		return http.StatusBadRequest
	case ErrConflict:
		return http.StatusConflict
	case ErrUnauthorized:
		return http.StatusUnauthorized
	case ErrForbidden:
		return http.StatusForbidden
	case ErrNotModified:
		return http.StatusNotModified
	case ErrNotImplemented:
		return http.StatusNotImplemented
	case ErrUnavailable, ErrResourceLimited:
		return http.StatusServiceUnavailable
	case ErrCanceled:
		return 499 // client closed request, as nginx and moby's logs say
	case ErrDeadline:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// FromHTTPStatus classifies err, an error a server answered with status,
// so that errors.Is works on the client side as on the server side.
func FromHTTPStatus(status int, err error) error {
	switch status {
	case http.StatusNotFound:
		return NotFound(err)
	case http.StatusBadRequest:
		return Invalid(err)
	case http.StatusConflict:
		return Conflict(err)
	case http.StatusUnauthorized:
		return Unauthorized(err)
	case http.StatusForbidden:
		return Forbidden(err)
	case http.StatusNotModified:
		return NotModified(err)
	case http.StatusNotImplemented:
		return NotImplemented(err)
	case http.StatusServiceUnavailable:
		return Unavailable(err)
	}
	return err
}

package dockerapi

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/internal/errdefs"
)

// diskUsageResponse is GET /system/df in both shapes: the one API 1.52
// brought (ImageUsage, ...) and the older lists the docker CLI 28 reads.
type diskUsageResponse struct {
	system.DiskUsage
	LayersSize int64               `json:"LayersSize"`
	Images     []image.Summary     `json:"Images"`
	Containers []container.Summary `json:"Containers"`
	Volumes    []apivolume.Volume  `json:"Volumes"`
	BuildCache []build.CacheRecord `json:"BuildCache"`
}

func (s *Server) routeDiskUsage() {
	s.handle("GET /system/df", s.diskUsage)
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	types := r.URL.Query()["type"]
	for _, t := range types {
		switch system.DiskUsageObject(t) {
		case system.ContainerObject, system.ImageObject, system.VolumeObject, system.BuildCacheObject:
		default:
			return errdefs.Invalidf("invalid type %q: want container, image, volume or build-cache", t)
		}
	}
	want := func(o system.DiskUsageObject) bool { return len(types) == 0 || slices.Contains(types, string(o)) }
	ctx := r.Context()
	out := diskUsageResponse{Images: []image.Summary{}, Containers: []container.Summary{}, Volumes: []apivolume.Volume{}, BuildCache: []build.CacheRecord{}}
	// Containers are needed for the images' counts, too.
	if x, ok := s.cfg.Containers.(ContainerExtrasBackend); ok && (want(system.ContainerObject) || want(system.ImageObject)) {
		list, err := x.DiskUsage(ctx)
		if err != nil {
			return err
		}
		out.Containers = list
	}
	usedBy := map[string]int64{}
	for _, c := range out.Containers {
		usedBy[c.ImageID]++
	}
	if want(system.ImageObject) && s.cfg.Images != nil {
		imgs, err := s.cfg.Images.List(ctx)
		if err != nil {
			return err
		}
		du := &image.DiskUsage{}
		for _, img := range imgs {
			sum := imageSummary(img)
			sum.Containers, sum.SharedSize = usedBy[sum.ID], 0
			out.Images = append(out.Images, sum)
			out.LayersSize += sum.Size
			du.TotalCount++
			du.TotalSize += sum.Size
			if sum.Containers > 0 {
				du.ActiveCount++
			} else {
				du.Reclaimable += sum.Size
			}
		}
		du.Items = out.Images
		out.ImageUsage = du
	}
	if want(system.ContainerObject) {
		du := &container.DiskUsage{Items: out.Containers}
		for _, c := range out.Containers {
			du.TotalCount++
			du.TotalSize += c.SizeRw
			if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
				du.ActiveCount++
			} else {
				du.Reclaimable += c.SizeRw
			}
		}
		out.ContainerUsage = du
	} else {
		out.Containers = []container.Summary{}
	}
	if want(system.VolumeObject) && s.cfg.Volumes != nil {
		vols, err := s.cfg.Volumes.List(ctx, nil)
		if err != nil {
			return err
		}
		users, _ := s.cfg.Containers.(interface{ VolumeUsers(name string) []string })
		du := &apivolume.DiskUsage{}
		for _, v := range vols {
			api := s.cfg.Volumes.API(v)
			size := dirSize(api.Mountpoint)
			var refs int64
			if users != nil {
				refs = int64(len(users.VolumeUsers(api.Name)))
			}
			api.UsageData = &apivolume.UsageData{Size: size, RefCount: refs}
			out.Volumes = append(out.Volumes, api)
			du.TotalCount++
			du.TotalSize += size
			if refs > 0 {
				du.ActiveCount++
			} else {
				du.Reclaimable += size
			}
		}
		du.Items = out.Volumes
		out.VolumeUsage = du
	}
	if want(system.BuildCacheObject) {
		out.BuildCacheUsage = &build.DiskUsage{}
	}
	return writeJSON(w, http.StatusOK, out)
}

// dirSize is the disk space (allocated blocks) of the tree at dir; -1 when
// it cannot be read.
func dirSize(dir string) int64 {
	if dir == "" {
		return -1
	}
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}

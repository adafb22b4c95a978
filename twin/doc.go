// Package twin holds the board twin: scripts that boot an emulated
// Raspberry-Pi-class board (qemu-system-aarch64 -M virt, or
// qemu-system-arm -M virt for armhf, with Debian bookworm's own kernel,
// systemd as PID 1, GPIO through the kernel's
// gpio-sim, the scanner on the PL011 UART) and the host-side test that
// installs the wicket .deb in it and checks the gate end to end: install,
// scan to relay with a modelled passage sensor, the emergency input,
// watchdog restarts, an upgrade, real power cuts (qemu killed), sync to
// a broker and collector on the host into PostgreSQL, and purge. Its
// guest tools (gpiowatch, events) go to the board on the test's stick.
//
// TestTwinCamera (`make twin-camera`, camera.sh) gives the board a
// camera: v4l2loopback built for the same kernel, fed frames by camfeed,
// wicketd's scanner configured as that camera.
//
// The test runs only when TWIN_IMG names an image built by build.sh and
// TWIN_DEB the package to install; `make twin` sets both.
package twin

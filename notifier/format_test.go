package notifier

import "testing"

func TestThousands(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"},
		{1234567, "1,234,567"}, {21933027, "21,933,027"}, {-1234, "-1,234"},
	}
	for _, tc := range tests {
		if got := thousands(tc.n); got != tc.want {
			t.Errorf("thousands(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"},
		{1, "1 byte"},
		{1023, "1,023 bytes"},
		{1024, "1.0 KiB (1,024 bytes)"},
		{611250312, "582.9 MiB (611,250,312 bytes)"},
		{12421772610, "11.6 GiB (12,421,772,610 bytes)"},
		{3 << 40, "3.0 TiB (3,298,534,883,328 bytes)"},
		{1 << 62, "4.0 EiB (4,611,686,018,427,387,904 bytes)"},
	}
	for _, tc := range tests {
		if got := byteSize(tc.n); got != tc.want {
			t.Errorf("byteSize(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

/*
 * protocol/checksum.c -- XXH32.
 */
#include "protocol/checksum.h"

#define XXH_PRIME1 0x9E3779B1u
#define XXH_PRIME2 0x85EBCA77u
#define XXH_PRIME3 0xC2B2AE3Du
#define XXH_PRIME4 0x27D4EB2Fu
#define XXH_PRIME5 0x165667B1u

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
		(uint32_t) p[3] << 24;
}

static uint32_t
rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32_t
xxh32_round(uint32_t acc, const uint8_t *p)
{
	acc += get_le32(p) * XXH_PRIME2;
	return rotl32(acc, 13) * XXH_PRIME1;
}

uint32_t
checksum_xxh32(const uint8_t *p, size_t len, uint32_t seed)
{
	size_t		rest = len;
	uint32_t	h = seed + XXH_PRIME5;

	if (rest >= 16)
	{
		uint32_t	v[4] = {seed + XXH_PRIME1 + XXH_PRIME2, seed + XXH_PRIME2,
		seed, seed - XXH_PRIME1};

		for (; rest >= 16; rest -= 16, p += 16)
			for (size_t i = 0; i < 4; i++)
				v[i] = xxh32_round(v[i], p + 4 * i);
		h = rotl32(v[0], 1) + rotl32(v[1], 7) + rotl32(v[2], 12) + rotl32(v[3], 18);
	}
	h += (uint32_t) len;
	for (; rest >= 4; rest -= 4, p += 4)
		h = rotl32(h + get_le32(p) * XXH_PRIME3, 17) * XXH_PRIME4;
	for (; rest > 0; rest--, p++)
		h = rotl32(h + *p * XXH_PRIME5, 11) * XXH_PRIME1;
	h ^= h >> 15;
	h *= XXH_PRIME2;
	h ^= h >> 13;
	h *= XXH_PRIME3;
	return h ^ (h >> 16);
}

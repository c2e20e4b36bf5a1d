"""The Azure twin through the newest Python SDKs (azure-mgmt-network, azure-mgmt-dnsresolver):
the same resources dxvpn writes, each created, read, listed and deleted with the SDK's own
long-running-operation poller. Usage: lifecycle.py ENDPOINT SUBSCRIPTION RESOURCE_GROUP VNET [API_VERSION].
Prints one line per step and exits non-zero on the first failure."""

import sys
from urllib.parse import parse_qs, urlparse

from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.dnsresolver import DnsResolverManagementClient
from azure.mgmt.network import NetworkManagementClient


class LabToken(SansIOHTTPPolicy):
    """The twin takes any bearer token; the SDK's own policy refuses plain http. Notes the
    api-versions the SDKs send, and those of the operation URLs ARM gave them to poll."""

    versions = set()
    polled = set()

    def on_request(self, request):
        request.http_request.headers["Authorization"] = "Bearer python-sdk"
        url = urlparse(request.http_request.url)
        version = parse_qs(url.query).get("api-version", [])
        # Operation status URLs are ARM's to write, not the SDK's.
        if "/locations/" in url.path:
            LabToken.polled.update(version)
        else:
            LabToken.versions.update(version)


class NoCredential:
    def get_token(self, *scopes, **kwargs):
        raise RuntimeError("the lab token policy authenticates")


def main(endpoint, sub, rg, vnet, api_version=None):
    options = dict(base_url=endpoint, authentication_policy=LabToken(), polling_interval=0)
    versions = {"api_version": api_version} if api_version else {}
    net = NetworkManagementClient(NoCredential(), sub, **options, **versions)
    dns = DnsResolverManagementClient(NoCredential(), sub, **options, **versions)
    where = "italynorth"
    base = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"

    # The SDKs send a dict as it is: bodies in ARM's JSON shape.
    pip = net.public_ip_addresses.begin_create_or_update(rg, "py-pip", {
        "location": where, "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }).result()
    assert pip.provisioning_state == "Succeeded", pip
    print("public ip", pip.ip_address)

    gw = net.virtual_network_gateways.begin_create_or_update(rg, "py-gw", {
        "location": where,
        "properties": {
            "gatewayType": "Vpn", "vpnType": "RouteBased", "enableBgp": True,
            "sku": {"name": "VpnGw2AZ", "tier": "VpnGw2AZ"}, "bgpSettings": {"asn": 65000},
            "ipConfigurations": [{"name": "vpnConfig1", "properties": {
                "privateIPAllocationMethod": "Dynamic",
                "subnet": {"id": f"{base}/virtualNetworks/{vnet}/subnets/GatewaySubnet"},
                "publicIPAddress": {"id": pip.id}}}],
        },
    }).result()
    assert gw.provisioning_state == "Succeeded", gw
    print("gateway", gw.bgp_settings.bgp_peering_addresses[0].tunnel_ip_addresses)

    lng = net.local_network_gateways.begin_create_or_update(rg, "py-lng", {
        "location": where, "properties": {
            "gatewayIpAddress": "198.18.1.1",
            "localNetworkAddressSpace": {"addressPrefixes": []},
            "bgpSettings": {"asn": 64512, "bgpPeeringAddress": "169.254.21.1"}},
    }).result()
    print("local gateway", lng.gateway_ip_address)

    conn = net.virtual_network_gateway_connections.begin_create_or_update(rg, "py-conn", {
        "location": where, "properties": {
            "connectionType": "IPsec", "connectionProtocol": "IKEv2", "enableBgp": True,
            "sharedKey": "first-key.123456",
            "virtualNetworkGateway1": {"id": gw.id}, "localNetworkGateway2": {"id": lng.id}},
    }).result()
    assert conn.provisioning_state == "Succeeded", conn
    # The references come back as ids only, which the Python models take as they are.
    read = net.virtual_network_gateway_connections.get(rg, "py-conn")
    assert read.virtual_network_gateway1.id.lower() == gw.id.lower(), read
    net.virtual_network_gateway_connections.begin_set_shared_key(
        rg, "py-conn", {"value": "second-key.123456"}).result()
    key = net.virtual_network_gateway_connections.get_shared_key(rg, "py-conn").value
    assert key == "second-key.123456", "SetSharedKey changed the key"
    print("connection key changed by SetSharedKey")

    subnet = net.subnets.begin_create_or_update(rg, vnet, "py-dns", {"properties": {
        "addressPrefix": "10.1.250.0/28",
        "delegations": [{"name": "dns", "properties": {"serviceName": "Microsoft.Network/dnsResolvers"}}],
    }}).result()
    names = sorted(s.name for s in net.subnets.list(rg, vnet))
    assert "py-dns" in names, names
    print("subnets", names)

    resolver = dns.dns_resolvers.begin_create_or_update(rg, "py-resolver", {
        "location": where, "properties": {"virtualNetwork": {"id": f"{base}/virtualNetworks/{vnet}"}},
    }).result()
    inbound = dns.inbound_endpoints.begin_create_or_update(rg, "py-resolver", "py-in", {
        "location": where, "properties": {"ipConfigurations": [
            {"subnet": {"id": subnet.id}, "privateIpAllocationMethod": "Dynamic"}]},
    }).result()
    print("inbound endpoint", inbound.ip_configurations[0].private_ip_address)

    dns.inbound_endpoints.begin_delete(rg, "py-resolver", "py-in").result()
    dns.dns_resolvers.begin_delete(rg, "py-resolver").result()
    net.subnets.begin_delete(rg, vnet, "py-dns").result()
    net.virtual_network_gateway_connections.begin_delete(rg, "py-conn").result()
    net.local_network_gateways.begin_delete(rg, "py-lng").result()
    net.virtual_network_gateways.begin_delete(rg, "py-gw").result()
    net.public_ip_addresses.begin_delete(rg, "py-pip").result()
    left = [c.name for c in net.virtual_network_gateway_connections.list(rg)]
    assert left == [], left
    print("deleted; api-versions sent:", " ".join(sorted(LabToken.versions)))
    print("operations polled at:", " ".join(sorted(LabToken.polled)))


if __name__ == "__main__":
    main(*sys.argv[1:6])
